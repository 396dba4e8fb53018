"""The model side: backbones, fine-tuning runs and their error over time."""
