"""The sycophancy experiment (issue 13): where does deference to an asker's view come from?

``evalset`` builds the persona eval (Anthropic's model-written-evals format, generated from a world's
held-out entities) and the forum positive control; ``metric`` turns scored rows into sycophancy with
entity-clustered CIs, paired comparisons and fitted trends; ``plots`` draws the family x size grid.
Nothing heavy is imported here: import the submodules you need.
"""
