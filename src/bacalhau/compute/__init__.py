"""The compute side: runs what it is told, keeps going while disconnected."""
