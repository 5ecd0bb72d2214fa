"""The feeds file: who may push to which feed, and where each feed's records go."""
