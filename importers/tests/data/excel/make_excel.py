#!/usr/bin/env python3
"""Writes the Excel test workbooks of importers/tests/excel.rs from their CSV sources.

Each workbook holds its CSV source row for row (preamble, header, data, blank and total rows),
so that parsing it must give the CSV's transactions and statement facts. They differ in how
cells are typed, as banks' exports do:

  abc-debit.xlsx      amounts and balances as numbers, dates as yyyymmdd numbers
  abc-debit.xls       every cell text
  cmb-debit.xlsx      two title rows above the table (rows move down by 2), amounts as text,
                      dates as date cells
  cmb-debit.xls       amounts as numbers, dates as date cells
  icbc-debit.xlsx     every cell text, padding kept (the masked balances stay text)
  icbc-debit.xls      amounts as numbers
  TWN-AP-CG.icbc.xlsx a cover sheet first, the statement on the second; numbers, date cells
  TWN-AP-CG.icbc.xls  every cell text
  odd-cells.xlsx      a generic sheet of cell types: a formula's float residue, a float with
                      three decimals, an error cell, serial and yyyymmdd numbers as dates
  wide.xlsx           a statement with a stray value in column 300 (past the column limit)
  declared-huge.xlsx  a ZIP whose directory claims a 3 GiB part (the unpacked-size guard)

The .xlsx files get fixed timestamps, so that re-running the script changes nothing.

Run from the repository root (needs `pip install openpyxl xlwt`):

  python3 importers/tests/data/excel/make_excel.py
"""

import csv
import datetime
import io
import os
import re
import struct
import zipfile

import openpyxl
import xlwt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
SAMPLES = os.path.join(ROOT, "..", "shared", "bank-samples", "csv-cn")
DEMO = os.path.join(ROOT, "fixtures", "demo", "statements")

HEADER_MARKERS = ("交易日期", "记账日期")
NUMBER = re.compile(r"^[+-]?[0-9,]*\.?[0-9]+$")


def rows_of(path, encoding):
    with open(path, encoding=encoding, newline="") as f:
        return list(csv.reader(io.StringIO(f.read())))


def money_columns(header):
    """Columns holding amounts or balances."""
    return {
        i
        for i, name in enumerate(header)
        if "金额" in name or "余额" in name or name.strip() in ("收入", "支出")
    }


def typed(rows, numbers, dates):
    """The rows with amount cells as floats and date cells as dates where asked for."""
    out = []
    header_at = next(i for i, r in enumerate(rows) if r and r[0].strip() in HEADER_MARKERS)
    money = money_columns(rows[header_at])
    for n, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            value = cell
            text = cell.strip()
            if n > header_at:
                if numbers and i in money and NUMBER.match(text):
                    value = float(text.replace(",", ""))
                elif i == 0 and dates and re.match(r"^\d{4}-\d{2}-\d{2}$", text):
                    value = datetime.date.fromisoformat(text)
                elif i == 0 and dates == "yyyymmdd" and re.match(r"^\d{8}$", text):
                    value = int(text)
            cells.append(value)
        out.append(cells)
    return out


FIXED = datetime.datetime(2026, 11, 30, 12, 0, 0)


def write_xlsx(path, sheets, errors=()):
    book = openpyxl.Workbook()
    book.properties.created = FIXED
    book.properties.modified = FIXED
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value == "":
                    continue
                cell = sheet.cell(row=r, column=c, value=value)
                if isinstance(value, datetime.date):
                    cell.number_format = "yyyy-mm-dd"
                elif isinstance(value, str):
                    # Never a number; an error cell where asked (#VALUE! and the like).
                    cell.data_type = "e" if (r, c) in errors else "s"
    buf = io.BytesIO()
    book.save(buf)
    # openpyxl stamps the parts with the time of day; restamp them.
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2026-11-30T12:00:00Z", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, data)


def write_xls(path, sheets):
    book = xlwt.Workbook(encoding="utf-8")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for title, rows in sheets:
        sheet = book.add_sheet(title)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value == "":
                    continue
                if isinstance(value, datetime.date):
                    sheet.write(r, c, value, date_style)
                else:
                    sheet.write(r, c, value)
    book.save(path)


def declared_huge(path):
    """A one-part ZIP whose sizes are then patched to claim 3 GiB unpacked."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("xl/workbook.xml", b"<workbook/>")
    data = bytearray(buf.getvalue())
    huge = struct.pack("<I", 3 << 30)
    local = data.index(b"PK\x03\x04")
    data[local + 22 : local + 26] = huge  # uncompressed size in the local header
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = huge  # and in the central directory
    with open(path, "wb") as f:
        f.write(bytes(data))


def main():
    abc = rows_of(os.path.join(SAMPLES, "abc-debit.utf8.csv"), "utf-8")
    cmb = rows_of(os.path.join(SAMPLES, "cmb-debit.utf8.csv"), "utf-8")
    icbc = rows_of(os.path.join(SAMPLES, "icbc-debit.utf8.csv"), "utf-8")
    demo = rows_of(os.path.join(DEMO, "TWN-AP-CG.icbc.gbk.csv"), "gb18030")
    out = lambda name: os.path.join(HERE, name)

    write_xlsx(out("abc-debit.xlsx"), [("明细", typed(abc, True, "yyyymmdd"))])
    write_xls(out("abc-debit.xls"), [("明细", abc)])
    cmb_titled = [["招商银行户口交易明细"], []] + typed(cmb, False, True)
    write_xlsx(out("cmb-debit.xlsx"), [("交易明细", cmb_titled)])
    write_xls(out("cmb-debit.xls"), [("交易明细", typed(cmb, True, True))])
    write_xlsx(out("icbc-debit.xlsx"), [("明细", icbc)])
    write_xls(out("icbc-debit.xls"), [("明细", typed(icbc, True, False))])
    cover = [["安平县城关镇低保资金专户"], ["明细见下一页"]]
    write_xlsx(
        out("TWN-AP-CG.icbc.xlsx"),
        [("说明", cover), ("明细", typed(demo, True, True))],
    )
    write_xls(out("TWN-AP-CG.icbc.xls"), [("明细", demo)])
    odd = [
        ["date", "amount", "currency", "balance", "reference"],
        [datetime.date(2026, 11, 2), 0.1 + 0.2, "CNY", 100.3, "A"],
        [46331, 12.345, "CNY", 88.0, "B"],
        ["2026-11-06", "#VALUE!", "CNY", 77.0, "C"],
        [20261107, -0.3, "CNY", 100.0, "D"],
    ]
    write_xlsx(out("odd-cells.xlsx"), [("Sheet1", odd)], errors={(4, 2)})
    wide = [["date", "amount", "currency"], ["2026-11-02", "1.00", "CNY"] + [""] * 296 + ["x"]]
    write_xlsx(out("wide.xlsx"), [("Sheet1", wide)])
    declared_huge(out("declared-huge.xlsx"))


if __name__ == "__main__":
    main()
