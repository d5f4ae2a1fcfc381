"""The Streamlit review app, shipped inside the package so `labelfix review` finds it after ``pip install``.

``review_app.py`` is the script Streamlit runs by path (:func:`labelfix.cli.review_commands.app_script`);
it builds the page when run, so importing it outside ``streamlit run`` is not meant to work. This
``__init__`` stays empty so importing ``labelfix.review.app`` never pulls in Streamlit.
"""
