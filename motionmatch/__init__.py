"""MotionMatch: find video clips whose motion is similar to a query clip."""
__version__ = "0.1.0"
