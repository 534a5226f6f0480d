"""Training: one readable fine-tuning recipe plus the pieces it calls."""
