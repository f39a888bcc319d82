"""Applications a member can run on the total order (``btob node --app NAME``)."""
