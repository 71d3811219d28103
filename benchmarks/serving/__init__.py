"""Side-by-side serving benchmark (issue 7): harness, servers, peers, report."""
