"""empiricist.report"""
