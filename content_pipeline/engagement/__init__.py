"""What readers did with the posts: engagement pulled per post and day, kept in a log of its own, and its views."""
