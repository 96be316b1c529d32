"""The lecture's neural network playground, trained live by mlpcli's own nn/ and training loop.

The server holds one training session per browser tab (sessions.py) and answers its page
(static/) with frames: the decision boundary, every neuron's output over the plane, the weights,
the losses. The browser only draws; no second implementation of the math exists.
"""
