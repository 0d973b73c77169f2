-- AlterTable
ALTER TABLE "PlaylistItem" ADD COLUMN     "breaks" TEXT NOT NULL DEFAULT '[]';
