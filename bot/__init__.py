"""gridbot: grid-patrol reports from group chat to fixed."""
