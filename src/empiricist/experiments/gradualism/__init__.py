"""Gradualism tested as a locked study: do small and early models forecast large and late ones?"""
