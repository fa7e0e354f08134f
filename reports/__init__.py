"""Agreement: metrics, tolerances, the comparison, the documents and reports, the command."""
