"""empiricist.internals"""
