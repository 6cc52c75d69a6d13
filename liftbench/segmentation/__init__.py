"""Segmentation building blocks for the Table 3 experiments: decoder head, losses, lr schedule, and Dice.

Each piece reproduces what the PlaneCycle authors' released training code computes (not what a textbook
version would), so that numbers obtained with them compare with the paper's table.
"""
