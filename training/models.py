"""The model side's data: training runs and their metrics arrive with the training issue."""
