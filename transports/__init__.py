"""All I/O to other devices lives here, behind one transport interface."""
