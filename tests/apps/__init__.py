"""Small applications the tests run as real servers (in-process or as child processes)."""
