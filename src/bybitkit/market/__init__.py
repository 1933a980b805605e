"""Exchange-agnostic market model: the local order book (trades, candles and tickers to come)."""

from bybitkit.market.order_book import BookSide, OrderBook, TakerSide

__all__ = ["BookSide", "OrderBook", "TakerSide"]
