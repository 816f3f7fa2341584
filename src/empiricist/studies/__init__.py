"""empiricist.studies"""
