"""Where work runs: child processes over a pipe (child), trainers on this machine (local) or on a
Ray cluster (ray_executor), the job queue over either, and the model process (analyst)."""
