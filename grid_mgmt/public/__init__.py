"""Citizens: public reports without an account, following them by tracking code and token, ratings, reopening."""
