"""empiricist.world"""
