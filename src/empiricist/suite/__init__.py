"""empiricist.suite"""
