"""Quality and speed benchmarks of the flow restorer against classical and DIP baselines."""
