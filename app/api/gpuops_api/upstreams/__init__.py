"""One module per external system the API talks to."""
