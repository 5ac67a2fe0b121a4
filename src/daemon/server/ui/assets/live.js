// Live updates: filled in with /live (server-sent events).
