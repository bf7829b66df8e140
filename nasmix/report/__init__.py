"""Reports: pure metrics, figures drawn from them, HTML/Markdown rendering."""
