"""The demo and the synthetic scenario it replays."""
