"""empiricist.lookup"""
