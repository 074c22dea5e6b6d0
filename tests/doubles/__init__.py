"""Test doubles for what cannot run here (hosted LLM providers, a Mattermost server).

Each double speaks the official wire protocol over real HTTP on a loopback port, so the
real client libraries are exercised end to end.
"""
