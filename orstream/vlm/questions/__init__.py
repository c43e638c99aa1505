"""Questions with known answers, drawn from the phantoms' ground truth, and answer scoring."""
