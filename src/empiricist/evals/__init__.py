"""empiricist.evals"""
