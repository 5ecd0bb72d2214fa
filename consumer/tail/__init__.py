"""Reading the service's topics back as a subscriber would: ``ivmtr-stream tail`` and reports."""
