"""Thin rclpy nodes around the core (the only modules that import rclpy)."""
