"""Image preparation: galaxy segmentation (`segment`) and the shared preprocessing path (`transforms`)."""
