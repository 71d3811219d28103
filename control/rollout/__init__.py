"""The rollout controller: a candidate version brought to traffic in steps (shadow, canary
shares, promotion), each step passed or failed on live evidence from the prediction log.

Layers: :mod:`evidence` reads the log and the feedback of one window into plain numbers;
:mod:`decide` turns a rollout's state and that evidence into a decision, purely;
:mod:`controller` applies decisions (traffic policy, stage events, alerts, records);
:mod:`service` runs the controller as a detached Ray actor.
"""
