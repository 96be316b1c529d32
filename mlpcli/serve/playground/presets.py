"""The playground's presets: one click each for a claim of the lecture, with what to watch.

Each preset has an `id` (the page opens it as /?preset=ID), a `name`, a one-sentence `watch` and a
`config` (keys over the playground's defaults: Adam at 0.01, batches of 10, 500 points, half for test).
Each claim shows within 30 seconds of pressing play at the page's default speed (25 steps every
1/60 s, 1,500 steps a second); tests/test_playground_presets.py drives each through the API and
checks its numbers within 3,000 steps.
"""

from __future__ import annotations

from typing import Any

PRESETS: list[dict[str, Any]] = [
    {
        "id": "linear-cannot-bend",
        "name": "A linear network cannot bend",
        "watch": "However many layers, a linear network is one linear map: its boundary stays a straight line and "
        "the circle is never separated (test accuracy stays near 50 %). Switch the activation to tanh and it is.",
        "config": {"data": {"dataset": "circle", "noise": 0.0}, "model": {"hidden": [4, 4], "activation": "linear"}},
    },
    {
        "id": "sigmoid-mse-slow",
        "name": "Sigmoid + squared error learns slowly",
        "watch": "The output delta o(1 - o)(o - t) is at most a quarter of o - t, and smaller where a sigmoid "
        "saturates: xor creeps along here, while the ReLU + cross-entropy preset solves it at once.",
        "config": {
            "data": {"dataset": "xor", "noise": 0.0},
            "model": {"hidden": [8], "activation": "sigmoid", "output": "sigmoid"},
            "loss": "mse",
            "optimizer": {"name": "sgd", "lr": 0.1},
        },
    },
    {
        "id": "relu-ce-fast",
        "name": "ReLU + cross-entropy learns fast",
        "watch": "The same data and rate as the sigmoid preset: cross-entropy's delta o - t does not shrink, and "
        "ReLU does not saturate, so xor is solved in a few hundred steps.",
        "config": {
            "data": {"dataset": "xor", "noise": 0.0},
            "model": {"hidden": [8], "activation": "relu"},
            "optimizer": {"name": "sgd", "lr": 0.1},
        },
    },
    {
        "id": "saturation",
        "name": "Saturated sigmoids: the delta vanishes",
        "watch": "A large rate drives the sigmoid units into saturation (watch '% saturated' climb) and the output "
        "delta o(1 - o)(o - t) falls far below the cross-entropy delta o - t beside it.",
        "config": {
            "data": {"dataset": "circle", "noise": 0.0},
            "model": {"hidden": [8], "activation": "sigmoid", "output": "sigmoid"},
            "loss": "mse",
            "optimizer": {"name": "momentum", "lr": 3.0},
        },
    },
    {
        "id": "dead-relu",
        "name": "A large learning rate kills ReLUs",
        "watch": "Watch the dead-unit count climb: a big step pushes units where their input is negative on every "
        "point, and they never learn again. Try leaky_relu with the same rate: its units cannot die.",
        "config": {
            "data": {"dataset": "spiral", "noise": 0.0},
            "model": {"hidden": [16, 16], "activation": "relu"},
            "optimizer": {"name": "sgd", "lr": 1.0},
        },
    },
    {
        "id": "more-neurons",
        "name": "More neurons fit the spiral",
        "watch": "Three layers of 16 tanh units bend the boundary around both arms (95 % on the test points within "
        "seconds); with two layers of 4 they cannot.",
        "config": {
            "data": {"dataset": "spiral", "noise": 0.0, "points": 500},
            "model": {"hidden": [16, 16, 16], "activation": "tanh"},
            "optimizer": {"name": "adam", "lr": 0.01},
        },
    },
    {
        "id": "overfitting",
        "name": "Overfitting",
        "watch": "Few noisy points and a big network: the training loss falls to nothing while the test loss turns "
        "up and keeps climbing. Add L2 regularization or take more points.",
        "config": {
            "data": {"dataset": "xor", "points": 60, "noise": 0.5},
            "model": {"hidden": [32, 32, 32], "activation": "relu"},
            "optimizer": {"name": "adam", "lr": 0.01},
        },
    },
]
