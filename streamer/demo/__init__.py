"""``streamer demo``: the local exchange, live books and orders, and every market fault, on one
screen (``plan``: what happens when; ``run``: doing it and counting; ``screen``: drawing it)."""
