"""plates"""
