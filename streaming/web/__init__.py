"""HTML for people: public pages, publication formats for BIP (vote lists, feeds, embeds),
search results, downloads, the login page and the operator console's shell."""
