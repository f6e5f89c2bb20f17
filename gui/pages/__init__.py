"""The window's pages, in the order a first-time user follows them."""
