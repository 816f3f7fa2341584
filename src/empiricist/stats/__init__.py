"""empiricist.stats"""
