"""Assembly of the labelled corpus from the ICCS manual, national lists and own records."""
