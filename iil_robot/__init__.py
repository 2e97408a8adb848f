"""iil_robot: teach robot arms through human interventions."""

__version__ = "0.1.0"
