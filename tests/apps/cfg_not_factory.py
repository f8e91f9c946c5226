"""--factory given for an object that is not callable."""
app = 42
