"""Board games on OpenSpiel: agents, the Elo ladder, capped game datasets, policy networks (issue 20)."""
