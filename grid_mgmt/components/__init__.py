"""Coded city components (管理部件): manhole covers, lamps, signs, trees…"""
