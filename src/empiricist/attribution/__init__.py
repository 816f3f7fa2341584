"""empiricist.attribution"""
