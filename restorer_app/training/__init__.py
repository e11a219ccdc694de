"""Training the flow prior: patch data, the paper's losses, a resumable training loop."""
