"""Mattermost as a live source: the REST/WebSocket client (:mod:`.client`), the event-to-mirror
mapping (:mod:`.mirror`, :mod:`.events`), the walk of the server (:mod:`.sync`), re-reading a
user or channel now (:mod:`.refresh`), re-index jobs (:mod:`.jobs`) and the index worker
(:mod:`.worker`). Depends only on rag/; the bot (bot/) listens on top of it."""
