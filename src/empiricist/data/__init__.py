"""empiricist.data"""
